//! `udplb`: the appliance binary.

fn main() {
    println!("udplb");
}
